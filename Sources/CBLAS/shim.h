#include <cblas.h>
// Declared by OpenBLAS but not in the generic cblas.h; lets us pin the BLAS thread count.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
char *openblas_get_config(void);
