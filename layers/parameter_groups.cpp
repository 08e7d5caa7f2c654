#include "stn/layers/parameter_groups.h"

#include <set>

#include "stn/layers/spatial_transformer.h"

namespace stn {

std::vector<ParameterGroup> localisation_parameter_groups(const Module& model, float localisation_scale) {
  std::set<const Parameter*> localisation;
  for (SpatialTransformer* st : find_transformers(model))
    for (Parameter* p : st->localisation_parameters()) localisation.insert(p);
  ParameterGroup rest{{}, 1.0f}, local{{}, localisation_scale};
  for (Parameter* p : model.parameters()) (localisation.count(p) ? local : rest).parameters.push_back(p);
  std::vector<ParameterGroup> groups = {rest};
  if (!local.parameters.empty()) groups.push_back(local);
  return groups;
}

}  // namespace stn
