// Package modeleval measures what quantization does to quanta's real models:
// the PP-OCRv4 text detector and recognizer, the PP-OCR direction
// classifier and Silero VAD v5 (the models folder of the shared material,
// ../shared/models beside the repository).
//
// The data are generated and committed in testdata (written by
// scripts/models/make_eval_data.py): rendered text lines with their
// strings, rendered pages, and synthetic speech-like audio. Each set has a
// calibration part (at most 64 feeds) and a disjoint evaluation part. The
// package turns them into model inputs exactly as PaddleOCR does (BGR
// order; the detector's (x/255 - mean) / std, the recognizer's and
// classifier's (x/255 - 0.5) / 0.5 with zero padding to the model width),
// builds calibration feeds (Silero's carry the state the float model
// produced on the preceding chunks), and compares a quantized program with
// the float one by the decision each model exists for:
//
//   - recognizer: the greedy CTC text (PaddleOCR's dictionary, blank 0, a
//     space appended) is identical to the float model's, per line;
//   - detector: the intersection over union of the text maps thresholded
//     at 0.3, per page (mean and smallest);
//   - classifier: the argmax class (upright or rotated by 180 degrees)
//     agrees with the float model's;
//   - Silero VAD: the speech decision (probability >= 0.5) agrees chunk by
//     chunk, each program carrying its own state through each clip.
//
// It also reports the float model against the ground truth where there is
// one (the rendered strings and the rotation labels), so the agreement
// figures can be read against how well the float model does at all.
package modeleval
