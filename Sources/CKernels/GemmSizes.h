// Block sizes of the packed GEMM (GemmBodies.h), shared with GemmDispatch.c's scratch size.
#define GEMM_MR 6
#define GEMM_KC 256  // a strip of B (KC × NR floats, 16 KB at AVX2) stays in L1 while the tiles of a column go by
#define GEMM_MC 96   // rows of A (96 KB at KC) read in place while every strip of B's panel goes by them: L2-resident
#define GEMM_NC 512  // columns of B packed at once; a multiple of every level's GEMM_NR
#define GEMM_ROWS_OUTER_PANEL (32 * 512)  // floats of B's packed panel (64 KB) up to which rows are swept outermost
