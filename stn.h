// The whole library in one include: #include <stn/stn.h> and link stn::stn.
//
// The parts, each usable on its own (include <stn/framework/...> etc. for less):
//   engine  tensors, the tape, ops (spatial ones too), autodiff (grad, jvp, hvp),
//           gradcheck, initialisers, generators, optimizers and schedules, MNIST/IDX data
//           and loaders, npy/PNG/safetensors files, the thread count
//   layers  modules (linear, conv, pooling, dropout, sequential), the spatial transformer,
//           its optimizer parameter groups, saving and loading weights, data-parallel
//           training over MPI (stn::distributed)
//   models  the paper's networks by name (FCN, CNN, ST-FCN, ST-CNN, ...)
#pragma once

#include "stn/framework/autodiff.h"
#include "stn/framework/data/idx.h"
#include "stn/framework/data/loader.h"
#include "stn/framework/data/mnist.h"
#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/init.h"
#include "stn/framework/io/npy.h"
#include "stn/framework/io/png.h"
#include "stn/framework/io/safetensors.h"
#include "stn/framework/ops.h"
#include "stn/framework/ops/spatial.h"
#include "stn/framework/optim/optimizer.h"
#include "stn/framework/optim/schedule.h"
#include "stn/framework/random.h"
#include "stn/framework/tape.h"
#include "stn/framework/tensor.h"
#include "stn/framework/threads.h"
#include "stn/layers/distributed.h"
#include "stn/layers/layers.h"
#include "stn/layers/parameter_groups.h"
#include "stn/layers/spatial_transformer.h"
#include "stn/layers/weights.h"
#include "stn/models/models.h"
