// A lower folder reaching up: the check must name this line.
#include "high/b.h"
