"""What every dataset task shares: reproducible splits, member bookkeeping and the dataset manifest."""
