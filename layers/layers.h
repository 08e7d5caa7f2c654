// Every layer, in one include.
#pragma once

#include "stn/layers/basic.h"
#include "stn/layers/conv.h"
#include "stn/layers/linear.h"
#include "stn/layers/module.h"
#include "stn/layers/sequential.h"
