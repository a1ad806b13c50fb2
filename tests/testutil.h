/* SPDX-License-Identifier: BSD-2-Clause */
/* Shared by the CUnit suites: run the suites, return non-zero on failure. */
#ifndef QDB_TESTUTIL_H
#define QDB_TESTUTIL_H

#include <CUnit/Basic.h>
#include <stdio.h>

static inline int qdb_test_run(CU_SuiteInfo *suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 99;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 99;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#endif
