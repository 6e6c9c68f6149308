/*
 * -h/--help for every command and subcommand: asked for, the usage is the
 * answer (stdout, exit 0); given as a reaction to bad arguments it is an
 * error (stderr, exit 2). One rule, so no command can get it backwards.
 */
#include <stdio.h>
#include <string.h>

#include "main_int.h"

int main_help_asked(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

FILE *main_usage_out(int argc, char **argv)
{
    return main_help_asked(argc, argv) ? stdout : stderr;
}

int main_usage_rc(int argc, char **argv)
{
    return main_help_asked(argc, argv) ? 0 : 2;
}
