// The packed GEMM of GemmBodies.h for the baseline level (see Levels.h).
#define DREAM_LEVEL_BASELINE
#include "Levels.h"
#include "GemmBodies.h"
#include "GroupedBodies.h"
