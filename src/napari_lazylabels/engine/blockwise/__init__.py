"""Block-wise (out-of-core) prediction with dask: the result of :func:`~..pipeline.segment_in_memory`, block by block.

The image (a dask array, read lazily by whoever made it) is cut into blocks on
the network's pooling grid (:class:`.grid.BlockGrid`). Four passes, each a list of
dask tasks that an executor runs (:mod:`.executors`: the in-process scheduler, or a
``dask.distributed`` cluster the caller connected to); :func:`.segment.segment_blockwise`
runs them in order, as a :class:`~..prediction_spec.PredictionSpec` says:

1. **Normalisation** (:mod:`.probabilities`). The percentiles of each channel, exactly those the
   in-memory path takes of the whole image (:mod:`..normalize`: two passes of
   block histograms over the values' bit patterns; no subsample).
2. **Probabilities** (:mod:`.probabilities`). ``dask.array.map_overlap`` with the exact
   receptive-field margin (:func:`~..inference.default_margin`): each block is
   predicted with its margin of real pixels (clipped at the image's edges,
   reflected up to the pooling multiple at the bottom and right as the
   in-memory path pads the whole image), and only its core is kept, so every
   kept pixel saw its whole receptive field: the probabilities equal a
   whole-image pass up to float rounding. With the test-time flips
   (``PostProcessing.flips``) each block is predicted four times, flipped
   as the in-memory path flips the whole image: a flipped pass sits on the
   pooling grid of the flipped image, which starts at the image's far edge,
   so its window is placed on that grid (up to one pooling multiple more of
   context) and reaches the whole image's padding at the near edge; the
   mean of the four is the in-memory one, up to float rounding. Each core is
   written to its sink.
3. **Instances** (:mod:`.instances`). The post-processing of the model (watershed or final
   growth) runs on each block's window (its core plus ``halo`` px, read back
   from the probability sinks). Its result on a *unit* — an 8-connected
   region of the support (foreground, or a seed head's foreground), the
   pixels the post-processing of an object can reach — depends only on the
   probabilities around that unit; so a unit that lies, with a small reach,
   inside a window is post-processed there exactly as in the whole image.
   Each object is named by a key, the raster index of its first pixel: every
   block that sees an object whole names it alike, so an object cut by a
   block edge keeps one id. A unit larger than a window is post-processed
   again, alone, in a window grown around it until it fits.
4. **Labels** (:mod:`.instances`). The keys, sorted, become ids 1..N (in raster order of the
   objects' first pixels), written block by block.

**Memory.** A block's arrays are freed when its task ends, but glibc's ``malloc`` keeps the pages of
freed chunks in each thread's arena (torch's and zarr's threads each have one), fragmented, so the
resident memory grew with every block. :func:`.executors.trim_freed_memory` (``malloc_trim``) hands them back before
each block's task, so the passes' peak stays that of one block (about 0.9 GB with 1024 px blocks and
the ``tiny`` network, at 2048 and 4096 px alike). What is not bounded by the block: a unit (pass 3)
that spans the image, as the foreground of confluent cells can, is post-processed in one window of
its size (``instances._resolve``), and that takes memory in proportion to it (about 75 bytes a pixel with
the ``tiny`` network). For the watershed a unit is a region of the foreground alone (:func:`.instances.support`).

The engine reads and writes only array-likes (``sinks``, :class:`.instances.BlockSinks`): the files are
:mod:`napari_lazylabels.io`'s business. Instances equal the in-memory ones up
to relabelling; the semantic map and the probabilities (to float rounding)
equal them as they are (``tests/test_blockwise.py``).
"""

