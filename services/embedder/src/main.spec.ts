import { describeServiceProcess } from '@faceprint/testing';

describeServiceProcess('embedder');
