/**
 * Every usage text of the `faceprint` command, in one module with no heavy imports: `faceprint
 * --help` prints them all without loading the code of any command.
 */
import { DEFAULT_GRPC_PORTS } from '@faceprint/service-kit/ports';

export const FACE_USAGE = `faceprint enroll --subject ID [--purpose P] [--basis B] [--retention-days N] [--request-id ID] IMAGE...
faceprint enroll --dir DIR            DIR/<subject>/<image files>, one subject per folder
  the same command again is a retry (it replays the first result); --request-id ID makes a new enrolment
  --basis explicit_consent (default) | employment_law | vital_interests | legal_claims | substantial_public_interest
  --purpose access_control (default)   --retention-days 365 (default)
  --keep-crops: the subject also agreed that the aligned crops be kept (sealed) to re-create templates for a new model
faceprint verify --subject ID IMAGE [--far 1e-4] [--face-region X,Y,W,H] [--purpose payment_verification|login] [--frames F2,F3,...]
faceprint compare IMAGE_A IMAGE_B [--far 1e-4] [--face-region X,Y,W,H] [--second-face-region X,Y,W,H] [--sign]
faceprint identify IMAGE [--top 5] [--far 1e-4] [--face-region X,Y,W,H]
  --far: a false-match rate the model is calibrated for (faceprint models list shows them; 1e-3, 1e-4, 1e-5 by default)
  --face-region: in a photo with several faces, the box (pixels) of the one to use (faceprint detect shows the boxes)
faceprint detect IMAGE [--out FILE.png]   --out draws the boxes and landmarks on a copy
faceprint gallery status                 model versions held, and subjects to re-enrol after a promotion
faceprint gallery reembed                after a promotion: re-create templates from kept crops (progress on standard error)`;


export const COMPLIANCE_USAGE = `faceprint erase --subject ID --request-ref REF [--reason R] [--note TEXT]
  --reason subject-request (default) | consent-withdrawn | operator
  with --json, prints the signed receipt: save it and check it with \`faceprint receipt verify\`
faceprint export --subject ID [--request-ref REF] [--vectors]`;


export const KEYS_USAGE = `faceprint keys create --id KEY_ID --roles operator[,compliance,admin]   prints the secret, once
faceprint keys list                        the tenant's keys: roles, made, rotated, revoked, last used
faceprint keys rotate --id KEY_ID [--grace-hours N]   a new secret; the old one works N more hours (default 0)
faceprint keys revoke --id KEY_ID          no secret of the key works again (a revoked key stays listed)
  needs an API key with the admin role (the local mesh's development admin key by default)`;


export const RECEIPT_VERIFY_USAGE = `faceprint receipt verify RECEIPT.json [--public-key FILE] [--json]
  RECEIPT.json        an erasure receipt or a decision record (ErasureReceipt or DecisionRecord in
                      protobuf JSON), or the output of faceprint verify --json (its decision_record)
  --public-key FILE   the matcher's receipt-signing public key, or several (faceprint receipt keys writes
                      them: the key the document names is used), PEM (default: the local mesh's,
                      data/gallery-keys/receipt-signing.pub.pem and the retired keys beside it)
  --json              print one JSON object
  exit status: 0 valid, 1 not valid, 2 usage
faceprint receipt keys [--out FILE] [--json]
                      the public keys receipts and records are signed with (active and retired), from
                      the gateway, as one PEM file (standard output without --out)
faceprint receipt rotate-key [--key-file FILE]
                      a new receipt-signing key for the matcher (default: the local mesh's); the old
                      public key is kept in retired-signing-keys/ beside it; restart the matcher after`;


export const GLOBAL_USAGE = `global flags: --target HOST:PORT (env FACEPRINT_TARGET; default the local mesh, 127.0.0.1:${DEFAULT_GRPC_PORTS.gateway})
              --api-key KEY (env FACEPRINT_API_KEY; default the local mesh's development key)
              --json (one JSON object on standard output)
exit status: 0 done (a comparison that does not match is done), 1 other failure, 2 bad input,
             3 not found, 4 permission denied or no valid key, 5 unavailable`;


export const MODELS_USAGE = `faceprint models list [--json]
faceprint models import --onnx FILE --spec SPEC.json --name NAME [--promote-if-first] [--json]
  (bring your own embedder or face detector: SPEC.json is what it is, a model manifest in protobuf JSON:
  task, license, source, inputs, and outputs, alignment, embedding_dim (embedders) or detector_head
  (detectors: yunet or retinaface); the trainer reads FILE, checks and publishes it)
faceprint models train --base NAME[@VERSION] (--data DIR|IDENTITIES.tsv [--root DIR] | --gallery TENANT | both) [--loss arcface|triplet|focal|softmax-ls] [--epochs N] [--augmentations N] [--resume JOB_ID] [--json]
faceprint models quantize NAME@VERSION --calib DIR|IDENTITIES.tsv [--root DIR] [--pairs FILE] [--calibration-images N] [--min-cosine X] [--max-accuracy-drop X] [--json]
faceprint models evaluate NAME@VERSION --pairs FILE [--root DIR] [--name DATASET] [--face largest|central] [--json]
faceprint models calibrate NAME@VERSION --data DIR|IDENTITIES.tsv [--root DIR] [--name DATASET] [--far 1e-3,1e-4,1e-5] [--json]
faceprint models pad-train --frames FRAMES.tsv --license SPDX-OR-LICENSEREF [--root DIR] [--name NAME] [--dataset-name NAME] [--target-bpcers 0.01,0.05] [--json]
  (a presentation-attack detector from labelled frames: FRAMES.tsv names file, label real|attack, split train|devel[, video, attack_type])
faceprint models promote NAME@VERSION [--force] [--reason TEXT] [--json]
faceprint models cancel JOB_ID [--json]
  --trainer HOST:PORT (env FACEPRINT_TRAINER_ADDRESS; default 127.0.0.1:${DEFAULT_GRPC_PORTS.trainer})`;


export const VERIFY_USAGE = `faceprint eval verify --pairs PAIRS [options]          the pairs of a pairs file
faceprint eval verify --all-pairs (--pairs PAIRS | --identities IDENTITIES.tsv) [options]
  --pairs FILE            LFW pairs (name n1 n2 / name1 n1 name2 n2) or a TSV of path_a, path_b, 0|1 and an
                          optional fold (from 1); the format is read from the content (--tsv: the same)
  --all-pairs             every pair of the listed images: genuine within an identity, impostor across;
                          TAR at FAR 1e-3..1e-6, each with its false matches and 95% upper bound
  --identities FILE       a TSV whose header names the columns identity and path (either order): the
                          images of --all-pairs, or the identities of a pairs file's images; with a
                          condition column, --all-pairs also reports each condition's FAR and FRR
  --threshold T           also report what this cosine threshold does here: FAR, FRR, counts, bound
  --model-far F           the same, with the threshold the serving embedder records for rate F
  --root DIR              where relative image paths start (default: the pairs file's folder)
  --face largest|central  which face of an image to use (default: largest; central suits pre-cropped sets)
  --refine                refine landmarks with the 68-point net before aligning
  --flip                  also embed the mirror image of each crop and average (for an embedder that does not
                          do it itself; the default FaceRecognitionNet does it in its graph)
  --calibration FILE      pairs to calibrate thresholds for FAR 1e-2/1e-3, reported on the main pairs
  --target HOST           use running services at HOST's default ports (default: start them locally)
  --detector-input-size N detector input size for locally started services (default 640)
  --limit N               about N pairs, taken evenly across the file (for a quick look)
  --concurrency N         images in flight (default 4)
  --scores FILE.tsv       write each pair's score (pairs only)
  --plot FILE.png         the ROC curve (pairs), or the DET curve on log axes (--all-pairs)
  --quality-curve         with --all-pairs: error versus discard of the unified face quality: TAR at FAR 1e-3
                          and 1e-4 after discarding the lowest-quality 0/5/10/20% of images, beside random discards
  --json                  print one JSON object
  images that cannot be read or decoded (PGM/PPM and TIFF are converted) are counted, not fatal`;


export const DETECT_USAGE = `faceprint eval detect --fddb ELLIPSE_LIST_FILE... --root DIR [options]
  --root DIR        the folder holding <path>.jpg for each annotated path (FDDB's originalPics)
  --input-size N    detector input size for a locally started detector (default 640)
  --target HOST     use a running detector at HOST:50051 (its own input size applies)
  --concurrency N   images in flight (default 2)
  --plot FILE.png   draw the discrete ROC curve
  --json            print one JSON object`;


export const CALIBRATE_USAGE = `faceprint eval calibrate --identities IDENTITIES.tsv [options]
  --root DIR              where relative image paths start (default: the file's folder)
  --dataset NAME          the name recorded with the thresholds (default: the file name)
  --face largest|central  which face of an image to use (default: largest)
  --flip                  also embed the mirror image of each crop and average (calibrate as you serve; the
                          default FaceRecognitionNet does it in its graph)
  --target HOST           use running services at HOST's default ports (default: start them locally)
  --detector-input-size N detector input size for locally started services (default 640)
  --far LIST              the false-match rates to calibrate, comma-separated (default 1e-3,1e-4,1e-5)
  --record                write the thresholds into the embedder model's manifest (FACEPRINT_MODEL_REGISTRY),
                          with their impostor counts and 95% bounds, and those of rate/k (k = 2..10) that a
                          verify over the best of k templates holds each to; a rate the data cannot show
                          (fewer than about 3/rate impostor pairs) is not recorded
  --concurrency N         images in flight (default 4)
  --json                  print one JSON object`;

export const MULTI_SAMPLE_USAGE = `faceprint eval multi-sample --identities IDENTITIES.tsv [options]
  each identity with more images than the largest N enrols its first N and is verified with the rest,
  against its own enrolment and every other's, for each fusion of a subject's templates: max (as the
  matcher decides), mean-score, mean-template
  --enrolled LIST         enrolment sizes, comma-separated (default 1,3,5)
  --root DIR              where relative image paths start (default: the file's folder)
  --face largest|central  which face of an image to use (default: largest)
  --threshold T           also report what this cosine threshold does: FAR, FRR, counts, bound
  --model-far F           the same, with the threshold the serving embedder records for rate F, and what the
                          matcher's own rule does (as_served: the best of N templates, each at the threshold for F/N)
  --target HOST           use running services at HOST's default ports (default: start them locally)
  --detector-input-size N detector input size for locally started services (default 640)
  --concurrency N         images in flight (default 4)
  --json                  print one JSON object`;

export const PAD_USAGE = `faceprint eval pad (--manifest FRAMES.tsv [--split NAME] [--root DIR] | --real DIR --attack DIR) [options]
  a presentation-attack detector on labelled frames, through the detector, aligner and liveness service: APCER
  and BPCER at the model's threshold, per attack type (and support: fixed, hand), APCER at BPCER 1% and 5%, EER,
  per frame and per video (the mean of its frames' scores)
  --manifest FILE         a TSV naming file and label (real|attack), optionally split, video, support, attack_type
  --split NAME            only the frames of this split (e.g. devel)
  --real DIR --attack DIR every image under each folder (instead of --manifest)
  --model NAME[@VERSION]  the PAD model the locally started liveness service serves (default its default)
  --target HOST           use running services at HOST's default ports (default: start them locally)
  --plot FILE.png         draw the DET curve (APCER against BPCER, per frame and per video)
  --concurrency N         frames in flight (default 4)
  --json                  print one JSON object (apcer, bpcer, apcer_at_bpcer {"0.01","0.05"}, per type, per_video)`;

/** The whole usage, for `faceprint --help` and a command line that names no command. */
export const USAGE = `usage:
  faceprint up                          the whole mesh on this machine (the same as npm start)
${[FACE_USAGE, COMPLIANCE_USAGE, KEYS_USAGE, RECEIPT_VERIFY_USAGE, GLOBAL_USAGE, MODELS_USAGE, VERIFY_USAGE, DETECT_USAGE, CALIBRATE_USAGE, MULTI_SAMPLE_USAGE, PAD_USAGE].map((usage) => `  ${usage.split('\n').join('\n  ')}`).join('\n\n')}
`;
