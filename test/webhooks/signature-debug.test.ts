import { describe, expect, it } from 'vitest';
import { describeSignature, signatureHints, type SignatureRecord } from '../../src/webhooks/signature-debug.ts';

const ID = '2d87c3a7-c655-4069-bfa7-bdadcdcc09bd';
const ENDPOINT = '8b7f775c-0000-4000-8000-000000000001';
const T = 1_795_920_912;

const row = (overrides: Partial<SignatureRecord> = {}): SignatureRecord => ({
  responseCode: 401,
  signatureTimestamp: BigInt(T),
  bodyBytes: 187,
  bodySha256: 'c0ffee'.padEnd(64, '0'),
  signedWith: ['aaaa1111', 'bbbb2222'],
  responseDate: new Date((T + 3) * 1000),
  ...overrides,
});
const noLabel = { endpointId: ENDPOINT, receiverOnSecrets: [] };

describe('describeSignature', () => {
  it('shows the signed parts as recorded, the secrets by role and fingerprint, and the skew from the Date header', () => {
    expect(describeSignature(ID, row())).toEqual({
      webhookId: ID,
      timestamp: T,
      signedContent: `${ID}.${T}.<body>`,
      bodyBytes: 187,
      bodySha256: 'c0ffee'.padEnd(64, '0'),
      secretVersions: [
        { version: 'current', fingerprint: 'aaaa1111' },
        { version: 'previous', fingerprint: 'bbbb2222' },
      ],
      receiverDate: new Date((T + 3) * 1000),
      clockSkewSeconds: 3,
    });
  });

  it('has no skew without a Date header, a negative one for a clock behind, and is null when nothing was recorded', () => {
    expect(describeSignature(ID, row({ responseDate: null }))).toMatchObject({ receiverDate: null, clockSkewSeconds: null });
    expect(describeSignature(ID, row({ responseDate: new Date((T - 700) * 1000) }))!.clockSkewSeconds).toBe(-700);
    expect(describeSignature(ID, row({ signatureTimestamp: null, bodyBytes: null, bodySha256: null, signedWith: [] }))).toBeNull();
  });
});

describe('signatureHints', () => {
  const codes = (hints: Array<{ code: string }>) => hints.map((h) => h.code);

  it('gives none unless the receiver answered 401 or 403', () => {
    for (const code of [200, 204, 400, 404, 410, 500, null]) {
      expect(signatureHints(code, describeSignature(ID, row({ responseCode: code })), noLabel), String(code)).toEqual([]);
    }
  });

  it.each([401, 403])('lists the usual causes on %i, with the figures of the attempt', (status) => {
    const signature = describeSignature(ID, row({ responseCode: status }));
    const hints = signatureHints(status, signature, noLabel);
    expect(codes(hints)).toEqual(['BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW']);
    const [body, secret, clock] = hints.map((h) => h.message);
    expect(body).toContain(`We sent 187 bytes with sha256 ${'c0ffee'.padEnd(64, '0')}`);
    expect(body).toMatch(/raw body/);
    expect(secret).toMatch(/strip the `whsec_` prefix and base64-decode/);
    expect(clock).toContain(`webhook-timestamp ${T} (${new Date(T * 1000).toISOString()})`);
    expect(clock).toContain('3 s after it: within the usual tolerance');
  });

  it('says when the receiver clock is beyond the 5-minute tolerance, ahead or behind', () => {
    const ahead = signatureHints(401, describeSignature(ID, row({ responseDate: new Date((T + 600) * 1000) })), noLabel);
    expect(ahead.find((h) => h.code === 'CLOCK_SKEW')!.message).toMatch(
      /600 s after it: more than the usual tolerance, so its clock is the likely cause/,
    );
    const behind = signatureHints(401, describeSignature(ID, row({ responseDate: new Date((T - 400) * 1000) })), noLabel);
    expect(behind.find((h) => h.code === 'CLOCK_SKEW')!.message).toMatch(/400 s before it: more than the usual tolerance/);
    const unknown = signatureHints(401, describeSignature(ID, row({ responseDate: null })), noLabel);
    expect(unknown.find((h) => h.code === 'CLOCK_SKEW')!.message).not.toMatch(/Date header/);
  });

  it('still lists the causes, without figures, for an attempt that recorded nothing', () => {
    const hints = signatureHints(403, null, noLabel);
    expect(codes(hints)).toEqual(['BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW']);
    expect(hints[0]!.message).not.toMatch(/We sent/);
  });

  it('puts the rotation label first, naming the secret the receiver is on and the way out', () => {
    const signature = describeSignature(ID, row({ signedWith: ['aaaa1111'] }));
    const hints = signatureHints(401, signature, { endpointId: ENDPOINT, receiverOnSecrets: ['bbbb2222'] });
    expect(codes(hints)).toEqual(['RECEIVER_ON_PREVIOUS_SECRET', 'BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW']);
    expect(hints[0]!.message).toMatch(/^Receiver still on previous secret: /);
    expect(hints[0]!.message).toContain('bbbb2222');
    expect(hints[0]!.message).toContain('current secret (aaaa1111)');
    expect(hints[0]!.message).toContain(`POST /api/webhooks/${ENDPOINT}/extend-previous-secret`);
  });
});
