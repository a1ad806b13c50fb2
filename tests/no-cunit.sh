#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Registered by make check in place of the CUnit suites when configure did
# not find CUnit: a hard error (99), so a build without the suites can never
# look like a passing one.
echo "ERROR: CUnit was not found at configure time, so the unit suites were not built."
echo "       Install it (apt-get install libcunit1-dev) and run configure again."
exit 99
