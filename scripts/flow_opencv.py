#!/usr/bin/env python3
"""OpenCV flow over consecutive frames of a folder, for scripts/bench_flow.py.

    scripts/flow_opencv.py dis-medium|dis-fast|farneback IN_DIR OUT_DIR

Writes OUT_DIR/NAME.flo (flow from frame NAME to the next), like `rotograph flow DIR -o OUT`.
Threads: THREADS (default 2) via cv2.setNumThreads.
"""
import os
import sys

import cv2


def main():
    method, src, out = sys.argv[1:4]
    cv2.setNumThreads(int(os.environ.get("THREADS", "2")))
    os.makedirs(out, exist_ok=True)
    names = sorted(n for n in os.listdir(src) if n.lower().endswith((".png", ".jpg")))
    if method == "dis-medium":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        calc = lambda a, b: dis.calc(a, b, None)
    elif method == "dis-fast":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        calc = lambda a, b: dis.calc(a, b, None)
    elif method == "farneback":
        calc = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
    else:
        sys.exit(f"unknown method {method}")
    prev = None
    for n in names:
        img = cv2.imread(os.path.join(src, n), cv2.IMREAD_GRAYSCALE)
        if img is None:
            sys.exit(f"{n}: not an image")
        if prev is not None:
            flow = calc(prev[1], img)
            cv2.writeOpticalFlow(os.path.join(out, os.path.splitext(prev[0])[0] + ".flo"), flow)
        prev = (n, img)


if __name__ == "__main__":
    main()
