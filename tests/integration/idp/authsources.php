<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'users' => [
        'exampleauth:UserPass',
        'alice:wonderland' => [
            'uid' => ['alice'],
            'displayName' => ['Alice Liddell'],
            'mail' => ['alice@example.org'],
        ],
        'bob:builder' => [
            'uid' => ['bob'],
            'displayName' => ['Bob the Builder'],
        ],
    ],
];
