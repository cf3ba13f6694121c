/**
 * The unified face quality score of `faceprint.common.v1.FaceQuality`: one rule, here beside the
 * contract, so that the detector that computes it and the gateway that explains a refusal read
 * the same factors. 100 times the product of one factor in [0, 1] per measure, each 1 where the
 * measure no longer limits recognition and 0 where the face is unusable by it. It is a rule, not a
 * trained model: `faceprint eval verify --quality-curve` measures whether discarding low scores
 * helps (docs/vision.md).
 */

/** The measures the score reads (FaceQuality's fields). */
export interface QualityMeasures {
  readonly interEyeDistance: number;
  readonly yawDegrees: number;
  readonly pitchDegrees: number;
  readonly sharpness: number;
  readonly underExposure: number;
  readonly overExposure: number;
  readonly luminanceMean: number;
  readonly illuminationUniformity: number;
}

/** One measure's factor and what it would take to reach 1. */
export interface QualityFactor {
  /** The measure, as FaceQuality names it. */
  readonly measure: string;
  /** Its value. */
  readonly value: number;
  /** The factor in [0, 1]. */
  readonly factor: number;
  /** Where the factor is 1, in words. */
  readonly full: string;
}

const unit = (v: number) => Math.max(0, Math.min(1, v));
/** 0 at `none`, rising (or falling) linearly to 1 at `full`. */
const ramp = (v: number, none: number, full: number) => unit((v - none) / (full - none));

/**
 * The factors. Ranges: inter-eye distance 10 -> 40 px (the embedder's 150 px crop holds about 55 px
 * between the eyes); |yaw| and |pitch| full up to 15 degrees, none at 60; sharpness 10 -> 150 on a
 * log scale; under- plus over-exposed share losing the factor twice as fast; mean luminance full
 * in 0.3-0.75, none below 0.1 or above 0.9; uniformity 0.15 -> 0.5. Roll does not count: the
 * aligner turns it away.
 */
export function qualityFactors(m: QualityMeasures): QualityFactor[] {
  return [
    { measure: 'inter_eye_distance', value: m.interEyeDistance, factor: ramp(m.interEyeDistance, 10, 40), full: 'at 40 px or more' },
    { measure: 'yaw_degrees', value: m.yawDegrees, factor: ramp(Math.abs(m.yawDegrees), 60, 15), full: 'within 15 degrees of frontal' },
    { measure: 'pitch_degrees', value: m.pitchDegrees, factor: ramp(Math.abs(m.pitchDegrees), 60, 15), full: 'within 15 degrees of frontal' },
    // On a log scale: the Laplacian variance spans orders of magnitude (a face in focus 200-1,500, heavily blurred 20).
    { measure: 'sharpness', value: m.sharpness, factor: ramp(Math.log10(Math.max(m.sharpness, 1)), 1, Math.log10(150)), full: 'at 150 or more' },
    { measure: 'exposure', value: m.underExposure + m.overExposure, factor: unit(1 - 2 * (m.underExposure + m.overExposure)), full: 'with no part of the face crushed to black or blown to white' },
    { measure: 'luminance_mean', value: m.luminanceMean, factor: Math.min(ramp(m.luminanceMean, 0.1, 0.3), ramp(m.luminanceMean, 0.9, 0.75)), full: 'between 0.3 and 0.75' },
    { measure: 'illumination_uniformity', value: m.illuminationUniformity, factor: ramp(m.illuminationUniformity, 0.15, 0.5), full: 'at 0.5 or more' },
  ];
}

/** The unified score, 0-100. */
export function unifiedQualityScore(m: QualityMeasures): number {
  return 100 * qualityFactors(m).reduce((product, f) => product * f.factor, 1);
}

/** The factor that lowers the score most (the lowest). */
export function limitingQualityFactor(m: QualityMeasures): QualityFactor {
  return qualityFactors(m).reduce((lowest, f) => (f.factor < lowest.factor ? f : lowest));
}

/** A FaceQuality's measures under their proto field names (for records and JSON reports). */
export function qualityFields(q: QualityMeasures & { readonly faceSize: number; readonly rollDegrees: number; readonly unifiedScore: number }) {
  return {
    unified_score: q.unifiedScore,
    face_size: q.faceSize,
    inter_eye_distance: q.interEyeDistance,
    sharpness: q.sharpness,
    yaw_degrees: q.yawDegrees,
    pitch_degrees: q.pitchDegrees,
    roll_degrees: q.rollDegrees,
    luminance_mean: q.luminanceMean,
    under_exposure: q.underExposure,
    over_exposure: q.overExposure,
    illumination_uniformity: q.illuminationUniformity,
  };
}
