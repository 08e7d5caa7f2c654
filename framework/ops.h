// Everything a model needs from the engine, in one include.
#pragma once

#include "stn/framework/autodiff.h"
#include "stn/framework/error.h"
#include "stn/framework/ops/conv.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/linalg.h"
#include "stn/framework/ops/loss.h"
#include "stn/framework/ops/pool.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"
#include "stn/framework/tape.h"
