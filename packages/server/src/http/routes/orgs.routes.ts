import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox';
import type { OrgService } from '../../services/org.service.js';
import { principal } from '../plugins/auth.js';
import { BODY_ERRORS, Name, OkEmpty, Security, errorResponses } from '../schemas/common.js';
import { CreateOrgBody, CreateOrgResponse } from '@rockit/contract';
import { PruneQuery } from './admin.routes.js';

/** /be/v1/orgs (spec §4): operator-org Administrators create; an org's Administrators delete it. */
export const orgRoutes: FastifyPluginAsyncTypebox<{ services: { orgs: OrgService } }> = async (app, { services }) => {
  const tags = ['orgs'];
  const common = { config: { auth: 'user' as const } };

  app.post('/be/v1/orgs', {
    ...common,
    schema: {
      tags, summary: 'Creates an organization (Administrators of the operator org)', security: Security.user, body: CreateOrgBody,
      response: { 201: CreateOrgResponse, ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const r = await services.orgs.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, ...r });
  });

  app.delete('/be/v1/orgs/:name', {
    ...common,
    schema: {
      tags, summary: 'Deletes an organization (its Administrators, or the operator org\'s)', security: Security.user,
      params: Type.Object({ name: Name() }), querystring: PruneQuery,
      response: { 200: OkEmpty, ...errorResponses(401, 403) },
    },
  }, async (req) => {
    await services.orgs.delete(principal(req), req.params.name, req.query.prune === true);
    return { status: 'success' as const };
  });
};
