/**
 * @faceprint/client: the gateway's public API as a typed TypeScript client, on the generated
 * contracts. Images in (encoded bytes), decisions out; the API key goes with every call.
 *
 *   const faceprint = new FaceprintClient({ target: 'localhost:50050', apiKey: process.env.FACEPRINT_API_KEY });
 *   await faceprint.enroll({ subjectId: 'alice', images: [await readFile('alice.jpg')] });
 *   const { decision } = await faceprint.verify('alice', await readFile('probe.jpg'), { far: 1e-4 });
 */
export * from './client.js';
