"""Post-processing: from the network's probabilities to semantic and instance labels."""
