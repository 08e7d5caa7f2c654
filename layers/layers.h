// Every layer, in one include.
#pragma once

#include "layers/basic.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/sequential.h"
