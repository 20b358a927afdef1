// The packed GEMM of GemmBodies.h for the AVX2 + FMA level (see Levels.h); x86-64 only. The AVX-512 level runs this
// same compiled code (GemmDispatch.c): a 512-bit micro-kernel could not be tested on the machines at hand.
#if defined(__x86_64__)
#define DREAM_LEVEL_AVX2
#include "Levels.h"
#include "GemmBodies.h"
#include "GroupedBodies.h"
#endif
