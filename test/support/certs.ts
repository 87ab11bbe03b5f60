// Throwaway PKI for the local control plane: one CA that signs the API
// server's serving cert and the admin client cert. Test infrastructure only;
// it uses src/pki only for the library binding, not the issuance logic under test.
import { webcrypto } from 'node:crypto';
import { x509, type CryptoKey } from '../../src/pki/crypto.ts';

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

export interface Pem { cert: string; key: string }

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export interface ClusterPki { ca: Pem; serving: Pem; admin: Pem; serviceAccount: { key: string; pub: string } }

export async function makeClusterPki(): Promise<ClusterPki> {
  const now = Date.now();
  const caKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=agent-identity-operator test cluster CA',
    keys: caKeys, signingAlgorithm: alg, serialNumber: '01',
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + 365 * DAY),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leaf = async (name: string, serial: string, san: x509.JsonGeneralNames | null, eku: string): Promise<Pem> => {
    const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([eku]),
    ];
    if (san) extensions.push(new x509.SubjectAlternativeNameExtension(san));
    const cert = await x509.X509CertificateGenerator.create({
      subject: name, issuer: caCert.subject, serialNumber: serial,
      notBefore: new Date(now - 3600_000), notAfter: new Date(now + 365 * DAY),
      signingAlgorithm: alg, publicKey: keys.publicKey, signingKey: caKeys.privateKey, extensions,
    });
    return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
  };
  const serving = await leaf('CN=kube-apiserver', '02', [
    { type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' },
    { type: 'dns', value: 'kubernetes.default.svc' },
  ], x509.ExtendedKeyUsage.serverAuth);
  const admin = await leaf('CN=admin, O=system:masters', '03', null, x509.ExtendedKeyUsage.clientAuth);
  const saKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const saPub = x509.PemConverter.encode(await webcrypto.subtle.exportKey('spki', saKeys.publicKey), 'PUBLIC KEY');
  return {
    ca: { cert: caCert.toString('pem'), key: await keyPem(caKeys.privateKey) },
    serving, admin,
    serviceAccount: { key: await keyPem(saKeys.privateKey), pub: saPub },
  };
}

/** A client certificate for an arbitrary user, signed by the cluster CA: lets tests act as a non-admin identity. */
export async function makeClientCert(ca: Pem, user: string, groups: string[] = []): Promise<Pem> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), alg, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const subject = [`CN=${user}`, ...groups.map((g) => `O=${g}`)].join(', ');
  const cert = await x509.X509CertificateGenerator.create({
    subject, issuer: caCert.subject, serialNumber: Math.floor(Math.random() * 1e12).toString(16).padStart(12, '0'),
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + DAY),
    signingAlgorithm: alg, publicKey: keys.publicKey, signingKey: caKey,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** A serving certificate for these DNS names and IPs, signed by `ca`: stands for a server a test reaches by those names. */
export async function makeServingCert(ca: Pem, names: string[]): Promise<Pem> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), alg, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${names[0]}`, issuer: caCert.subject, serialNumber: Math.floor(Math.random() * 1e12).toString(16).padStart(12, '0'),
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + DAY),
    signingAlgorithm: alg, publicKey: keys.publicKey, signingKey: caKey,
    extensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (/^[\d.]+$/.test(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}
