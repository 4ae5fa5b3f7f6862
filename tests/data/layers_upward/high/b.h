// Includes downward: allowed.
#include "low/a.h"
