#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/spdx.sh: every source file carries an SPDX-License-Identifier line
# (BSD-2-Clause, see LICENSE) at its top: the first line, or the second after
# a #! line.  Exit 0 pass, 1 fail.
#   tests/spdx.sh --add    insert the line where it is missing (from the top
#                          of the source tree), in each file's comment syntax
cd "${srcdir:-.}" || exit 99
ID="SPDX-License-Identifier: BSD-2-Clause"
add=; [ "${1:-}" = --add ] && add=yes
missing=0
for f in */*.c */*.h */*.sh */*/*.sh Makefile.am */*.am */*/*.am configure.ac */*.gp */*/*.gp \
         client/libqdb.pc.in transport-real/qdbd.service.in doc/*.1 doc/*.8 tests/*.supp \
         dev.sh .ci/run debian/rules debian/*.postinst; do
    case $f in build/* | build-aux/* | m4/* | debian/build/* | *'*'*) continue ;; esac # generated
    [ -f "$f" ] || continue
    head -n 2 "$f" | grep -q "$ID" && continue
    if [ -z "$add" ]; then
        echo "no '$ID' line at the top of $f (tests/spdx.sh --add puts one there)"
        missing=1
        continue
    fi
    case $f in
    *.c | *.h) line="/* $ID */" ;;
    *.1 | *.8) line=".\\\" $ID" ;;
    *) line="# $ID" ;;
    esac
    if head -n 1 "$f" | grep -q '^#!'; then
        { head -n 1 "$f"; printf '%s\n' "$line"; tail -n +2 "$f"; } > "$f.spdx"
    else
        { printf '%s\n' "$line"; cat "$f"; } > "$f.spdx"
    fi
    cat "$f.spdx" > "$f" && rm -f "$f.spdx" # cat keeps the file's mode
done
[ $missing -eq 0 ] && [ -z "$add" ] && echo "spdx: every source file names its license"
exit $missing
