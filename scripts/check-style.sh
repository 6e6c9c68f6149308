#!/bin/sh
# Project rules a compiler does not check: banned functions (like curl's
# checksrc), module dependencies pointing down only (STYLE.md section 2),
# and no typedef'd structs. Prints "N passed, N failed".
cd "$(dirname "$0")/.."
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   style/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL style/$1"; }

# Every C file outside tests and build output belongs to a module: a new
# folder is checked (and needs its row) without anyone listing it here.
src=$(find . -mindepth 2 -name '*.[ch]' -not -path './tests/*' -not -path './build*' \
    -not -path './.git/*' -not -path '*/node_modules/*' -not -path './docs/*' |
    sed 's|^\./||' | sort)

if grep -nE '\b(gets|strcpy|strcat|sprintf|vsprintf|atoi|atol|strtok|alloca)\s*\(' $src; then
    bad banned-functions
else
    ok banned-functions
fi

# module -> modules it may include: the table in README.md ("| module | may
# include |"), so the rule the README states is the rule enforced.
rules=$(awk '/^\| module \| may include \|/ { on = 1; next }
             on && /^\|---/ { next }
             on && /^\| / { gsub(/[|,]/, " "); print; next }
             on { exit }' README.md)
allowed() {
    echo "$rules" | awk -v m="$1" '$1 == m { $1 = ""; print m $0 }'
}
tabled=1
for d in $(printf '%s\n' $src | cut -d/ -f1 | sort -u); do
    if [ -z "$(allowed "$d")" ]; then
        echo "module $d has no row in README.md's dependency table"
        tabled=0
    fi
done
[ -n "$rules" ] && [ $tabled = 1 ] && ok module-table || bad module-table
deps_ok=1
for f in $src; do
    mod=${f%%/*}
    for inc in $(sed -n 's/^#include "\(.*\)"/\1/p' "$f"); do
        case $inc in
        ../*) target=${inc#../}; target=${target%%/*} ;;
        *) target=$mod ;;
        esac
        if ! echo " $(allowed "$mod") " | grep -q " $target "; then
            echo "$f includes $inc: $mod may not depend on $target"
            deps_ok=0
        fi
    done
done
[ $deps_ok = 1 ] && ok module-dependencies || bad module-dependencies
# ... and no row names a module its code does not include: the table says
# what the code does, not what it once did.
exact=1
for d in $(printf '%s\n' $src | cut -d/ -f1 | sort -u); do
    used=" $(grep -h '^#include "\.\./' $(printf '%s\n' $src | grep "^$d/") 2>/dev/null |
             sed 's|^#include "\.\./\([^/]*\)/.*|\1|' | sort -u | tr '\n' ' ')"
    for t in $(allowed "$d"); do
        [ "$t" = "$d" ] || [ "$t" = "(nothing)" ] && continue
        if ! echo "$used" | grep -q " $t "; then
            echo "README.md lets $d include $t, which none of its files does"
            exact=0
        fi
    done
done
[ $exact = 1 ] && ok module-table-exact || bad module-table-exact

if grep -nE 'typedef\s+struct' $src; then
    bad no-struct-typedefs
else
    ok no-struct-typedefs
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
