// The kernels of KernelBodies.h (and DepthwiseBodies.h) for one instruction-set level (see Levels.h).
#define DREAM_LEVEL_BASELINE
#include "Levels.h"
#include "KernelBodies.h"
#include "DepthwiseBodies.h"
