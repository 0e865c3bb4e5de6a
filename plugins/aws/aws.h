/*
 * aws/aws.h - the private interface between the files of the AWS plugin:
 * sigv4.c (signing), xml.c (answers as Lua tables) and aws.c (the binding).
 */
#ifndef DRR_AWS_H
#define DRR_AWS_H

#include "aws/sigv4.h"

#define DRR_AWS_XML_MT "drrun.aws.XmlParser"

/* aws.core.xml(s) -> value, root_name | nil, err, "invalid" */
int drr_aws_l_xml(lua_State *L);
/* Create the parser userdata's metatable.  [-0, +0, m] */
void drr_aws_xml_register(lua_State *L);

#endif
