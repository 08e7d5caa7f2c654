// The spatial transformer's differentiable parts (paper §3): the grid generators
// (spatial_grid.h: affine, attention, projective, thin plate spline) and the sampler
// (spatial_sample.h). A transformer on U is
//
//   stn::Var theta = localisation_net.forward(U);
//   stn::Var sampling_grid = stn::affine_grid(theta, output_height, output_width);
//   stn::Var V = stn::grid_sample(U, sampling_grid);
#pragma once

#include "stn/framework/ops/spatial_grid.h"
#include "stn/framework/ops/spatial_sample.h"
