<?php
/* Registers a service provider at this IdP from the SP's own metadata file,
 * the way an administrator would: SimpleSAMLphp's parser reads it, and its
 * signature must verify with the certificate the metadata carries.
 * usage: php register-sp.php METADATA.xml OUT.php encrypt(0|1) [DATA-ALGORITHM] */
require '/usr/share/simplesamlphp/lib/_autoload.php';
$xml = file_get_contents($argv[1]);
$entities = \SimpleSAML\Metadata\SAMLParser::parseDescriptorsString($xml);
$out = "<?php\n";
foreach ($entities as $e) {
    $md = $e->getMetadata20SP();
    if ($md === null) { fwrite(STDERR, "no SP in metadata\n"); exit(1); }
    $pem = "-----BEGIN CERTIFICATE-----\n" . chunk_split($md['keys'][0]['X509Certificate'], 64, "\n")
         . "-----END CERTIFICATE-----\n";
    $certfile = getenv('GH_SSP_DIR') . '/cert/sp-check.pem';
    file_put_contents($certfile, $pem);
    if (!$e->validateSignature(['sp-check.pem'])) { fwrite(STDERR, "metadata signature does not verify\n"); exit(3); }
    $md['validate.authnrequest'] = true;
    $md['assertion.encryption'] = $argv[3] === '1';
    $md['sharedkey_algorithm'] = $argv[4] ?? 'http://www.w3.org/2001/04/xmlenc#aes128-cbc';
    $md['attributes.NameFormat'] = 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic';
    $out .= '$metadata[' . var_export($md['entityid'], true) . '] = ' . var_export($md, true) . ";\n";
}
file_put_contents($argv[2], $out);
echo "registered\n";
