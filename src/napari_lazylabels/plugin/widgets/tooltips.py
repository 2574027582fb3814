"""Every tooltip and help text of the napari widgets, in one place."""

from __future__ import annotations

TIPS: dict[str, str] = {
    # annotation widget
    "image": "The image to annotate. A 2D+t or 2D+z stack is annotated plane by plane: "
             "each plane is one training image.",
    "class_names": "Names of the object classes, separated by commas. Their number is K: "
                   "blobs and masks hold class ids 1..K (not instance ids).",
    "input_button": "{tooltip} Its layer appears when you first press it. Shortcut {shortcut}.",
    "every_head": "Each prediction shows the objects found and P(object), the probability that a pixel is in one. Tick to show also the "
                  "probability of every other head (blobs, interfaces...), the class map and the parts of "
                  "fg/bg strokes; untick to remove them (the export keeps them either way).",
    "kinds_legend": "The colour each kind of lazy label paints in (its first class, and its named values).",
    "summary": "Per image (or plane of a stack), one column per kind of lazy label ({titles}); "
               "'-' where the image is not annotated for it (it counts when its layer is painted on "
               "that image, or when a project marks it annotated).",
    # GrabCut
    "grabcut": "Draft strong masks from the blobs of the current plane with GrabCut. Drafts go only "
               "where the mask layer is still empty; Ctrl-Z on the masks layer undoes them.",
    "grabcut_scope": "Which blobs to draft: every blob of the plane, only the blobs of the class "
                     "selected in the blobs layer, or only the blobs inside the visible area.",
    "grabcut_iterations": "GrabCut iterations per blob (0: the dilated blob, no GrabCut).",
    # machine-made points and mask
    "autolabel": "Make one point per object (Laplacian-of-Gaussian blobs of the object size) and a "
                 "foreground mask (a threshold, or the model's foreground) from the current plane, shown "
                 "in two preview layers. 'Merge' adds them: points only where no point lies within an "
                 "object's radius, mask pixels only where the mask is still empty: nothing painted or "
                 "clicked is replaced. 'Undo' removes them again.",
    "autolabel_points_channel": "The channel the points are found in (e.g. the nuclear stain).",
    "autolabel_mask_channel": "The channel thresholded for the mask (e.g. a cytoplasm or membrane stain).",
    "autolabel_size": "Typical object diameter, in pixels or (with the image's pixel size) micrometres; "
                      "0: read from the image.",
    "autolabel_threshold": "Threshold method of the mask: auto (Otsu, Li or triangle, chosen from the "
                           "image's histogram), Otsu, Li, triangle, or a fixed value (in the channel's "
                           "intensity units).",
    "autolabel_detection": "Smallest blob response (on the channel scaled to 0..1): lower finds dimmer objects.",
    "autolabel_tiling": "One point per blob, or per piece of the mask when the cells fill the image with only thin "
                        "membranes between them (electron microscopy): auto decides from the mask.",
    "autolabel_split_pairs": "Two round nuclei that touch without a neck read as one blob. Two points gives such a "
                             "pair (a large elongated part of the mask) one point in each nucleus; auto does so "
                             "only when the objects read round, not for irregular or long ones (H&E, bacteria).",
    "autolabel_second_reading": "When the labels look wrong (a mask over almost the whole image, or a single "
                                "point), read the image again as dark objects in bright halos (bacteria in phase "
                                "contrast), cut apart at the bright lines between them. Untick to keep the first "
                                "reading.",
    "autolabel_second_reading_off": "Only when the threshold, the objects and the size are all read from the image "
                                    "(auto): what you set is kept as it is.",
    "autolabel_dark": "Objects brighter or darker than the background (H&E nuclei are darker): auto reads it from the image.",
    # training
    "train_images": "Images to train on (tick several). The image highlighted here shows its label "
                    "layers below; planes of a stack with nothing painted are skipped, unless a "
                    "self-supervised task (fg/bg scribbles) is trained: it learns from every plane.",
    "train_tabs": "Images: what to train on and its label layers; Settings: the run (remembered across "
                  "sessions); Progress: the loss curves; Model & predict: the models trained or loaded, "
                  "Predict, Save, Export.",
    "label_layers": "The Labels layers that hold the lazy labels of the image ticked for training (the "
                    "highlighted one when several are ticked). By default those "
                    "the Lazy annotation widget made; pick another layer of the same shape if you "
                    "painted elsewhere. Training, the summary and the export use these layers.",
    "input_layer": "The layer with the {title} of this image: {values}.",
    "preview": "The image whose prediction layers are refreshed while training runs (its current "
               "plane for a stack).",
    "preset": "Network size: 'tiny' for tests, 'cpu' trains usefully in minutes on 2 cores, "
              "'paper' is the network of Ke et al. (2020), for GPUs.",
    "steps": "Optimisation steps in total. Resume continues until this many.",
    "patch": "Side of the square training patches (px).",
    "batch": "Patches per step.",
    "lr": "Base learning rate (linear warm-up, then cosine decay).",
    "weight": "How much the head learnt from {task} counts in the total loss (0 switches it off).",
    "weights": "How much each task counts in the total loss (1: as much as the others; 0: off).",
    "postprocessing": "How probabilities become objects: used by Predict and saved with the model.",
    "opt_in": "{description}",
    "regime_options": "{description}. These settings apply when the painted labels train it.",
    "device": "Where to train: auto picks CUDA, then Apple MPS, then the CPU.",
    "threads": "CPU threads for training. Leaving one core free keeps napari responsive.",
    "rescale": "Resize the image by this factor before predicting, and the results back: 2 when the "
               "objects look half as large (in pixels) as those trained on. 0: automatic (image pixel "
               "size / training pixel size when both are known, else 1).",
    "train": "Train a new model from scratch on the ticked images.",
    "stop": "Stop after the current step; the last checkpoint is kept and Resume continues from it.",
    "resume": "Continue the current model (the stopped run from its checkpoint, or a loaded model, "
              "fine-tuned), up to Steps.",
    "device_in_use": "The device the running (or last) training actually uses.",
    "loss_plot": "Loss per task over training steps (running mean).",
    # model
    "models": "The models of this session: each Train makes a new one (named after its image and the "
              "time), each loaded model joins the list. The one chosen here predicts, exports and is "
              "continued by Resume. They live in a temporary folder: Save model as... keeps one.",
    "save_model": "Save the current model as a folder (weights + config.json).",
    "load_model": "Load a model folder saved before (from napari or the lazylabels CLI), or a bioimage.io "
                  "package (.zip). Resume then fine-tunes it on the ticked images.",
    "predict_image": "The image layer to segment.",
    "predict": "Segment the image with the current (or loaded) model: per-task probabilities, "
               "semantic classes and instances (every plane of a stack), with the post-processing "
               "settings above.",
    "predict_selected": "Segment every selected image layer (as Predict does for one).",
    "predict_folder": "Segment every image of a folder with the current model (loaded once) and write "
                      "the results into another folder; an image that fails is reported and skipped, "
                      "existing results are replaced only if you agree.",
    "predict_folder_format": "What Predict folder writes per image: the instance labels as a TIFF, or "
                             "an OME-Zarr store with the image, probabilities, classes and instances.",
    "predict_folder_open": "Open each result of Predict folder as layers when it is done.",
    "export_authors": "Authors of an exported bioimage.io package, separated by commas (remembered). "
                      "Empty: your login name, or 'anonymous' for a system account such as root.",
    "export_modality": "The imaging modality tag of an exported bioimage.io package (remembered).",
    "export_model": "Write the current model as a bioimage.io model package (.zip) that Fiji "
                    "(deepImageJ), QuPath, ilastik and `lazylabels predict` can run.",
    # export
    "export_image": "The image to export with its lazy labels and prediction layers.",
    "export_folder": "The project folder (OME-Zarr stores plus project.json). It is created if "
                     "missing; other images in it are kept.",
    "export": "Write the image, its lazy labels and its predictions into the project. An image "
              "already in the project is replaced only if you agree.",
}


def tip(key: str, **fields) -> str:
    """The tooltip for ``key`` (empty string if there is none), its ``{fields}`` filled in.

    The texts about one kind of lazy label take their words from its regime
    (title, values, tooltip, shortcut), so a new regime needs no new entry here.
    """
    text = TIPS.get(key, "")
    return text.format(**fields) if fields else text
