import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../errors.ts';
import { loginInput, loginUser, registerInput, registerUser, userSchema } from '../services/users.ts';

const sessionSchema = z.object({ user: userSchema, token: z.string() });

/** Registration and login; both hand back a bearer token. Rate limited per client address. */
export const authRoutes: FastifyPluginAsyncZod = async (app) => {
  const rateLimit = { max: app.config.rateLimits.authPerMinute, timeWindow: '1 minute' };

  app.post(
    '/auth/register',
    {
      config: { rateLimit },
      schema: {
        tags: ['auth'],
        summary: 'Create an account',
        description: 'Email and username are case-insensitive and stored lowercased. Returns the user and a bearer token.',
        body: registerInput,
        response: { 201: sessionSchema, 400: errorResponseSchema, 409: errorResponseSchema, 429: errorResponseSchema },
      },
    },
    async (request, reply) => {
      const user = await registerUser(app.db.prisma, request.body);
      return reply.status(201).send({ user, token: app.signToken(user) });
    },
  );

  app.post(
    '/auth/login',
    {
      config: { rateLimit },
      schema: {
        tags: ['auth'],
        summary: 'Log in with email or username',
        body: loginInput,
        response: { 200: sessionSchema, 400: errorResponseSchema, 401: errorResponseSchema, 429: errorResponseSchema },
      },
    },
    async (request) => {
      const user = await loginUser(app.db.prisma, request.body);
      return { user, token: app.signToken(user) };
    },
  );
};
