"""Short joint names for the markers drawn on a radiograph, shared by every page with a viewer
(the reader's workspace, the visit form, the lead's adjudication view)."""
from __future__ import annotations

# Marker labels on the image must be short enough not to cover the neighbouring joint.
SHORT_LABELS = {
    "ip1": "IP", "cmc1": "CMC1", "mul": "TRP", "nav": "SCA", "lunate": "LUN", "radius": "RAD", "ulna": "ULN",
    "mna": "MNA", "capnlun": "CNL", "radcar": "RC", "mtp_ip": "IP",
}


def short_label(joint_name: str) -> str:
    return SHORT_LABELS.get(joint_name, joint_name.upper())
