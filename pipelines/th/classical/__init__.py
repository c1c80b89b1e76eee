"""th classical engine, no learned face weights: mouth motion from the speech by rules, warping of the twin's frames."""
