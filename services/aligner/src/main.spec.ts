import { describeServiceProcess } from '@faceprint/testing';

describeServiceProcess('aligner');
