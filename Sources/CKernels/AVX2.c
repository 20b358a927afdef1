// The kernels of KernelBodies.h (and DepthwiseBodies.h) for one instruction-set level (see Levels.h); x86-64 only.
#if defined(__x86_64__)
#define DREAM_LEVEL_AVX2
#include "Levels.h"
#include "KernelBodies.h"
#include "DepthwiseBodies.h"
#endif
