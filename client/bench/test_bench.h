#ifndef BENCH_TEST_BENCH_H
#define BENCH_TEST_BENCH_H

#include <check.h>

TCase *bench_tcase(void);

#endif
