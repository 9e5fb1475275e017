"""The RunRecord and the results store it is kept in: the seam between a run and every report of it."""
