// Which PodCertificateRequests another change concerns: the mapping the
// signer controller is declared with (operator.ts).
import type { PodCertificateRequest } from '../api/types.ts';
import { objectKey, type Mapper } from '../controller/controller.ts';
import { answered } from './ledger.ts';

/** A TrustDomain's signing state moved: the requests that waited for it (still unanswered). */
export const pendingRequests = (requests: { list(): readonly PodCertificateRequest[] }): Mapper<unknown> => () =>
  requests.list().filter((r) => !answered(r)).map(objectKey);
