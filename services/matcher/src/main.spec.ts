import { describeServiceProcess } from '@faceprint/testing';

describeServiceProcess('matcher');
