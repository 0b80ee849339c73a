"""A notebook-first kit for teaching and experimenting with SimCLRv2: contrastive pretraining, fine-tuning from the projection head, and distillation, built on fastai.

Modules:

- `simclr_nb.augment`: Turn a uint8 batch into the float images a model sees, on the batch's own device: SimCLR's two random views of every image (random resized crop + flip, colour distortion, grayscale, optional blur) for pretraining, a light crop or translate + flip for fine-tuning and distillation, and the `AugmentBatch` callback that applies them.
- `simclr_nb.cputune`: Systems tuning for training on a CPU, apart from the lessons: glibc keeping freed memory for the next step, the channels-last memory layout with the one oneDNN bug it must avoid, and `torch.compile` (measured, off by default). None of them changes the method's numbers.
- `simclr_nb.evaluate`: Measure a representation and judge a result: the encoder's features, a weighted kNN vote of labeled neighbours (no training needed, so it can run every epoch), accuracy, pictures of the embedding, and -- for results over seeds -- `Spread` and the one `verdict`.
- `simclr_nb.models`: The networks of SimCLRv2: ResNet encoders (depth x width x selective kernels) built from plain-dict specs, the 3-layer projection head, the contrastive, fine-tuning and classifier networks around them, and their checkpoints.
- `simclr_nb.optim`: The optimiser SimCLR(v2) pretrains and fine-tunes with: LARS with momentum 0.9 and trust coefficient 0.001, a linear warm-up followed by a cosine decay to zero, and a learning rate scaled with the batch size.
- `simclr_nb.precision`: Mixed precision for every stage's training step: `precision='auto'` picks bfloat16 autocast on a CPU with native bf16 instructions (AVX512-BF16 / AMX) or a GPU that supports it, fp32 elsewhere.
- `simclr_nb.pretrain`: Stage 1 of SimCLRv2, task-agnostic: contrastive learning on all images. A callback turns each uint8 batch into two augmented views, the network embeds both in one forward pass, and NT-Xent pulls the two views of an image together. Optional: the paper's MoCo-style memory, a kNN monitor, and checkpoints you can resume from."""

__version__ = "0.1.0"

import warnings as _warnings
# fastai scripts a few functions with torch.jit.script when it is imported, which torch 2.14 deprecates: a FutureWarning
# naming the virtualenv's path at the top of every notebook. Nothing a user of this kit can act on, so it is hidden.
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
