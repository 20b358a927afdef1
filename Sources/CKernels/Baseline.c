// The kernels of KernelBodies.h for one instruction-set level (see Levels.h).
#define DREAM_LEVEL_BASELINE
#include "Levels.h"
#include "KernelBodies.h"
