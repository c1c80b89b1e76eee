"""face-vid2vid (zlh "New" SPADE and "Beta" original generators, KPDetector, HEEstimator) and the BFv2v generator."""
