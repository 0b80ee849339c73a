"""A notebook-first kit for teaching and experimenting with SimCLRv2: contrastive pretraining, fine-tuning from the projection head, and distillation, built on fastai.

Modules:

- `simclr_nb.evaluate`: How good is a representation? Extract the encoder's features for labeled and test images and classify the test images by a weighted vote of their nearest labeled neighbours -- no training needed, so it can run every epoch.
- `simclr_nb.optim`: The optimiser SimCLR(v2) pretrains and fine-tunes with: LARS with momentum 0.9 and trust coefficient 0.001, a linear warm-up followed by a cosine decay to zero, and a learning rate scaled with the batch size."""

__version__ = "0.1.0"
