"""A local movie-review chat assistant: fine-tuned language model plus retrieval over Rotten Tomatoes reviews."""
