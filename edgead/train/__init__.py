"""Build-host training: fit a detector on good images, calibrate thresholds, export a bundle (needs [train])."""
