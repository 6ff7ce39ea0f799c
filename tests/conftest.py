import torch

# Two CPU cores: keep torch from oversubscribing them in tests.
torch.set_num_threads(2)
