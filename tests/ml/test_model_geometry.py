"""Peak decoding, mirroring and crop geometry of the hand scorer."""

from __future__ import annotations

import numpy as np
import torch

from modeling.ml.data import extract_crops, hand_size, mirror_points, prepare_image
from modeling.ml.networks import decode_heatmaps, gaussian_heatmaps


def test_subpixel_decoding_recovers_a_known_peak_within_a_tenth_of_a_pixel():
    true = torch.tensor([[[12.37, 8.81], [3.52, 20.08], [29.9, 1.45]]])
    heat = gaussian_heatmaps(true, torch.ones(1, 3, dtype=torch.bool), (24, 32), sigma=1.5)
    found, conf = decode_heatmaps(heat)
    assert torch.all((found - true).abs() < 0.1), found
    # the integer argmax alone would be off by up to half a pixel
    assert (found - true).abs().max() < (found.round() - true).abs().max()
    assert torch.all(conf > 0.8)


def test_a_peak_on_the_border_row_is_not_refined_past_half_a_pixel():
    true = torch.tensor([[[31.2, 5.0]]])
    heat = gaussian_heatmaps(true, torch.ones(1, 1, dtype=torch.bool), (12, 32), sigma=1.5)
    found, _ = decode_heatmaps(heat)
    assert abs(float(found[0, 0, 0]) - 31.0) <= 0.5 and abs(float(found[0, 0, 1]) - 5.0) < 0.1


def test_peak_height_is_the_confidence():
    heat = 0.3 * gaussian_heatmaps(torch.tensor([[[5.0, 5.0]]]), torch.ones(1, 1, dtype=torch.bool), (11, 11), 1.5)
    _, conf = decode_heatmaps(heat)
    assert abs(float(conf[0, 0]) - 0.3) < 1e-5


def test_mirroring_points_twice_is_the_identity():
    pts = np.array([[0.0, 3.0], [100.25, 7.5], [1023.0, 1.0]])
    once = mirror_points(pts, 1024)
    assert np.allclose(once[:, 0], [1023.0, 922.75, 0.0]) and np.allclose(once[:, 1], pts[:, 1])
    assert np.allclose(mirror_points(once, 1024), pts)


def test_left_hand_is_mirrored_for_the_net_and_points_come_back_unmirrored():
    img = np.zeros((200, 160), dtype=np.uint16)
    img[50:53, 20:23] = 4000  # a bright spot near the left edge of a left hand
    prep = prepare_image(img, "L", (100, 80))
    assert prep.mirrored
    # in the net input the spot sits near the right edge
    net = prep.net[0, 0].numpy()
    iy, ix = np.unravel_index(np.argmax(net), net.shape)
    assert ix > 60 and 20 <= iy <= 30
    pts = np.array([[21.0, 51.0], [140.3, 170.9]])
    assert np.allclose(prep.from_net(prep.to_net(pts)), pts)
    spot = prep.to_net(pts[:1])[0]
    assert abs(spot[0] - ix) <= 1.0 and abs(spot[1] - iy) <= 1.0


def test_crops_are_centred_on_their_landmark():
    img = np.zeros((300, 240), dtype=np.float32)
    yy, xx = np.mgrid[0:300, 0:240]
    centres = np.array([[60.0, 80.0], [181.5, 222.25]])
    for x, y in centres:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 4.0**2))
    prep = prepare_image(img, "R", (150, 120))
    crops = extract_crops(prep.full, centres, side=96.0, out_size=32)
    assert crops.shape == (2, 1, 32, 32)
    for c in crops[:, 0]:
        heat = c[None, None]
        found, _ = decode_heatmaps(heat)
        assert torch.all((found[0, 0] - 15.5).abs() < 0.3), found


def test_hand_size_is_the_median_pairwise_distance():
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # distances 3, 4, 5
    assert hand_size(pts) == 4.0
    assert hand_size(np.vstack([pts, [[np.nan, np.nan]]]), np.array([1, 1, 1, 0], bool)) == 4.0


def test_logit_maps_decode_to_their_peak_and_sigmoid_height():
    from modeling.ml.networks import decode_logits

    true = torch.tensor([[[10.3, 7.6], [4.8, 12.1]]])
    ys = torch.arange(16.0).view(1, 1, 16, 1)
    xs = torch.arange(20.0).view(1, 1, 1, 20)
    # a log-Gaussian bump on a flat negative background, as the trained net produces
    logits = 3.0 - ((xs - true[..., 0, None, None]) ** 2 + (ys - true[..., 1, None, None]) ** 2) / (2 * 1.5**2)
    found, conf = decode_logits(logits)
    assert torch.all((found - true).abs() < 0.05)
    assert torch.allclose(conf, torch.sigmoid(logits.amax(dim=(-2, -1))))


def test_phantom_hands_become_right_oriented_samples():
    from modeling.ml import phantoms
    from modeling.ml.data import phantom_sample

    left, right = phantoms.generate_patient(0)
    s = phantom_sample(left, "p")
    assert s["laterality"] == "L" and s["targets"][("mcp2", "erosion")] == left.grades["erosion"]["mcp2"]
    assert s["boxes"]["mcp2"] == tuple(left.boxes["mcp2"])
    for ph in (left, right):
        prep = prepare_image(ph.image, ph.laterality, (320, 256))
        net = prep.to_net(np.array([ph.landmarks["ip1"], ph.landmarks["mcp5"]]))
        # after mirroring left hands, the thumb is always on the image's left, the little finger right
        assert net[0, 0] < net[1, 0]
