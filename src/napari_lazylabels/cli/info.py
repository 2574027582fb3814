"""``lazylabels info``: what a model folder holds (network, tasks, classes, post-processing, provenance)."""

from __future__ import annotations


def add_parser(sub) -> None:
    info = sub.add_parser("info", help="describe a model folder")
    info.add_argument("--model", required=True, metavar="MODEL_DIR")
    info.set_defaults(run=cmd_info)


def cmd_info(args) -> int:
    import json

    from ..engine.model import count_parameters
    from ..io.modelio import load_model
    model = load_model(args.model)
    print(json.dumps({"network": model.network_config.to_dict(), "parameters": count_parameters(model.network),
                      "tasks": model.task_names, "class_names": model.class_names,
                      "postprocess": model.postprocess.to_dict(), "provenance": model.provenance}, indent=2))
    return 0
