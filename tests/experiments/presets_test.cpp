// The presets' numbers that were chosen on the validation split (README: "Chosen on
// validation"): a preset must hand each dataset and model the setting the evidence chose.
#include "stn/experiments/presets.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace {

using stn::cli::preset_config;

float loc_scale(const char* preset, const char* dataset, const char* model) {
  return preset_config(preset, dataset, model).localisation_lr_scale;
}

TEST(Presets, TableLocalisationRateFollowsTheValidationChoices) {
  // P and E: every transformer model at 0.3x (ST-CNN-Aff collapsed at 1x on P).
  EXPECT_FLOAT_EQ(loc_scale("table", "p", "st-cnn-aff"), 0.3f);
  EXPECT_FLOAT_EQ(loc_scale("table", "e", "st-fcn-tps"), 0.3f);
  // RTS: the ST-FCN-Aff's grid left the canvas at 1x; the other RTS models trained at 1x.
  EXPECT_FLOAT_EQ(loc_scale("table", "rts", "st-fcn-aff"), 0.3f);
  EXPECT_FLOAT_EQ(loc_scale("table", "rts", "st-fcn-proj"), 1.0f);
  EXPECT_FLOAT_EQ(loc_scale("table", "rts", "st-cnn-aff"), 1.0f);
  EXPECT_FLOAT_EQ(loc_scale("table", "r", "st-fcn-aff"), 1.0f);
  // TC: 0.3x in both presets.
  EXPECT_FLOAT_EQ(loc_scale("table", "tc", "st-cnn-aff"), 0.3f);
  EXPECT_FLOAT_EQ(loc_scale("fast", "tc", "st-fcn-aff"), 0.3f);
  // The fast preset keeps 1x elsewhere, RTS's ST-FCN-Aff included (its choice was made at the
  // table length).
  EXPECT_FLOAT_EQ(loc_scale("fast", "rts", "st-fcn-aff"), 1.0f);
  EXPECT_FLOAT_EQ(loc_scale("fast", "p", "st-cnn-aff"), 1.0f);
}

TEST(Presets, DatasetAndModelAreKept) {
  const auto c = preset_config("table", "rts", "st-fcn-aff");
  EXPECT_EQ(c.dataset, "rts");
  EXPECT_EQ(c.model, "st-fcn-aff");
  EXPECT_EQ(c.iters, 18000);
  // Without a model the default model's numbers come back (no transformer: 1x).
  EXPECT_FLOAT_EQ(preset_config("table", "rts").localisation_lr_scale, 1.0f);
}

TEST(Presets, UnknownPresetIsRefused) {
  EXPECT_THROW(preset_config("tabel", "rts", "cnn"), std::invalid_argument);
}

}  // namespace
