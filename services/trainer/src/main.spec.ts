import { describeServiceProcess } from '@faceprint/testing';

describeServiceProcess('trainer');
