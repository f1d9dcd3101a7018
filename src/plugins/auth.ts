import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import type { UserRef } from '../user-ref.ts';

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string; username: string };
    user: UserRef;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: a valid bearer token is required. */
    authenticate(request: FastifyRequest): Promise<void>;
    /** preHandler: a bearer token, if sent, must be valid; anonymous otherwise. */
    identifyViewer(request: FastifyRequest): Promise<void>;
    signToken(user: UserRef): string;
  }
  interface FastifyRequest {
    viewer: UserRef | null;
  }
}

export const TOKEN_TTL = '7d';

export const authPlugin = fp(
  async (app: FastifyInstance, opts: { jwtSecret: string }) => {
    await app.register(fastifyJwt, {
      secret: opts.jwtSecret,
      sign: { expiresIn: TOKEN_TTL, algorithm: 'HS256' },
      verify: { algorithms: ['HS256'] },
      formatUser: (payload) => ({ id: payload.sub, username: payload.username }),
    });
    app.decorateRequest('viewer', null);

    const verify = async (request: FastifyRequest): Promise<void> => {
      try {
        await request.jwtVerify();
      } catch {
        throw new AppError('INVALID_TOKEN');
      }
      // Only this service holds the key, but a token it did not shape is still not a session: a
      // subject that is not a user id would reach the database as a 5xx.
      const { id, username } = request.user;
      if (!isUuid(id) || typeof username !== 'string') throw new AppError('INVALID_TOKEN');
    };

    app.decorate('authenticate', async (request: FastifyRequest) => {
      if (!request.headers.authorization) throw new AppError('UNAUTHORIZED');
      await verify(request);
    });
    app.decorate('identifyViewer', async (request: FastifyRequest) => {
      if (!request.headers.authorization) return;
      await verify(request);
      request.viewer = request.user;
    });
    app.decorate('signToken', (user: UserRef) => app.jwt.sign({ sub: user.id, username: user.username }));
  },
  { name: 'auth' },
);
