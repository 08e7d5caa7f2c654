// Everything a model needs from the engine, in one include.
#pragma once

#include "framework/autodiff.h"
#include "framework/error.h"
#include "framework/ops/conv.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linalg.h"
#include "framework/ops/loss.h"
#include "framework/ops/pool.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"
#include "framework/tape.h"
